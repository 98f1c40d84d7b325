"""The ``edgekit`` command line: one parser, one module per group of subcommands."""
