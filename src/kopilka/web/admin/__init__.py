"""The console for the programme team at ``/admin``: Jinja2 templates, ES modules, CSS."""
