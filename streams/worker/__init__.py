"""The stream worker: Faust wiring (``app``) around per-partition runners (``runner``)."""
