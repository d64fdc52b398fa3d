"""Errors of the simulator that a user can act on."""


class OperationalNotEmptyError(RuntimeError):
    """The operational tables hold data and replacing it was not asked for."""
