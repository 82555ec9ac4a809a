"""DRF's parsers, with JSON nested too deeply for Python's parser a 400 like any bad JSON.

Nested brackets past the recursion limit of `json` (a thousand on Python 3.11, ten thousand on
3.13: 20 KB) raise RecursionError, which would otherwise be a 500 with a traceback. (Its own
module: DRF reads DEFAULT_PARSER_CLASSES while rest_framework.views is imported, which
apps.core.api.errors imports.)
"""

from typing import Any

from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - the document is nested too deeply.") from None
