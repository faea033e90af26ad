"""One exception type for every mistake a user can make, so the CLI can print one line."""


class UserError(Exception):
    """A problem the user can fix; the message names the thing and what to do.

    ``exit_code`` follows the CLI contract: 1 some inputs failed, 2 the call cannot work.
    """

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code
