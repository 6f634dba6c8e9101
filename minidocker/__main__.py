from minidocker.cli import entry_point

entry_point()
