"""The one error type of seedcore-boot; the CLI turns it into a line and an exit code."""

EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127


class BootError(Exception):
    """What failed and why (message), and what to do about it (hint)."""

    def __init__(self, message, hint=None, exit_code=EXIT_RUNTIME):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    def __str__(self):
        text = f"{self.message}; {self.hint}" if self.hint else self.message
        # One line whatever the message quotes: a value from a file or a variable may hold a line break.
        return text.replace("\r", "\\r").replace("\n", "\\n")


def usage_error(message, hint=None):
    return BootError(message, hint, EXIT_USAGE)
