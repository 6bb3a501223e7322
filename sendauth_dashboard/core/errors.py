"""What a rule says when it is broken: a ServiceError's message tells the person what was wrong
and how to fix it, and its ``field`` names the form field it is about (None: the form as a
whole). Pages show it beside that field (``pages.forms.apply_service_error``); the rules'
own errors (AccountError, TransactionError, SettingsError, ...) are ServiceErrors."""


class ServiceError(ValueError):
    def __init__(self, message, field=None):
        super().__init__(message)
        self.field = field
