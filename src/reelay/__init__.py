"""reelay."""
