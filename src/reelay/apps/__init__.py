"""Apps that ship inside the package, each a directory with a reelay.yaml and handlers."""
