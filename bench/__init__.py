"""`make bench`: one module per figure, `bench_<name>.py` with a `main()` that prints it."""
