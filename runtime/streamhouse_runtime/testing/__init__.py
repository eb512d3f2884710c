"""The offline runner behind `streamhouse test`."""
