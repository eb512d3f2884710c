"""StreamHouse SQL front end: dialect, parser and pattern language."""
