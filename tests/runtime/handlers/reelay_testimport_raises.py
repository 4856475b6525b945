"""A handler module that fails while being imported."""

raise RuntimeError("missing setting BUCKET")
