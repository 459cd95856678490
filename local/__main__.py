"""`python -m local` (what `make run` calls): start the local stack in the foreground."""

from local.stack import main

main()
