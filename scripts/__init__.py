"""Set-up and maintenance helpers run by the shell scripts beside them."""
