"""One module per `farside` subcommand; each exposes a click command named `cli`."""
