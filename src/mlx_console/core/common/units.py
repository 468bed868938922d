"""The one byte formatter, in two widths: `1.5 GiB` for sentences and reports, `1.5G` for table cells."""

from __future__ import annotations

KIB, MIB, GIB, TIB = 1024, 1024**2, 1024**3, 1024**4


def fmt_bytes(n: object, *, compact: bool = False) -> str:
    """1610612736 → '1.5 GiB' (compact: '1.5G'; B/K/M without decimals). Not a number: '?' (compact: '-',
    also for 0 and less: an unknown or empty size in a table)."""
    if isinstance(n, bool) or not isinstance(n, int | float):
        return "-" if compact else "?"
    if compact:
        if n <= 0:
            return "-"
        for unit, size in (("T", TIB), ("G", GIB), ("M", MIB), ("K", KIB)):
            if n >= size:
                return f"{n / size:.1f}{unit}" if unit in ("G", "T") else f"{n / size:.0f}{unit}"
        return f"{n:.0f}B"
    for unit, size in (("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"
