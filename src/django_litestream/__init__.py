"""django-litestream."""
