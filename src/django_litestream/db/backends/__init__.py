"""Django database backends shipped with django-litestream."""
