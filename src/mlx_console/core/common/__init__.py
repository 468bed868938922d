"""Plumbing shared by every part of core: atomic files, loopback HTTP, formatting, process helpers."""
