"""`farside firmware build` and the UF2 writer."""
