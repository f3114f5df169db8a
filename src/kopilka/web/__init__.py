"""Server-rendered web front ends: the member app (``web.app``) and the console (``web.admin``)."""
