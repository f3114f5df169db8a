"""The member app (PWA) served at ``/app``: pages, static ES modules, service worker."""
