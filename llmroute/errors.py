"""One error hierarchy for the whole program.

Each error knows the exit status it maps to (SPEC §12), and provider errors know their SPEC §4.1
class, so the CLI turns any of them into one or two plain lines and the right exit code, and the
fallback loop decides what to do next from the class alone::

    LLMRouteError                      exit code
    ├── UsageError                     2   bad flags, empty prompt, invalid UTF-8, unknown target
    ├── ConfigError                    3   every problem as `path:line: message`
    ├── BudgetError                    4   a limit would be crossed; says which and when it resets
    ├── NoProviderError                5   nothing to try (no key, all filtered)
    ├── KeyringUnavailable             5   no usable keyring backend
    ├── ProviderError                  1   one failed call, with its ErrorClass
    └── AllAttemptsFailed              1   (or the code of the last decisive error)
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

from .types import RateLimitInfo, Result


class ExitCode(IntEnum):
    OK = 0
    PROVIDER = 1
    USAGE = 2
    CONFIG = 3
    BUDGET = 4
    NO_PROVIDER = 5
    INTERRUPTED = 130


class ErrorClass(StrEnum):
    """SPEC §4.1 error classes.

    `empty` is a 200 answer that carried no text (streamed or not): retried and moved on like
    `malformed`. `invalid_output` is an answer that is not what was asked for (not valid JSON for
    `--schema`): moved on at once. `interrupted` is a call the user stopped (Ctrl-C): nothing
    else is tried."""

    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    MALFORMED = "malformed"
    EMPTY = "empty"
    INVALID_OUTPUT = "invalid_output"
    INTERRUPTED = "interrupted"
    AUTH = "auth"
    BAD_REQUEST = "bad_request"
    CONTEXT_LENGTH = "context_length"
    NOT_FOUND = "not_found"
    BUDGET = "budget"

    @property
    def retryable(self) -> bool:
        """Retried on the same target (with backoff) before moving on."""
        return self in _RETRYABLE

    @property
    def stops_fallback(self) -> bool:
        """No other target is tried: the request itself is wrong (no other target will do
        better), or the user interrupted it."""
        return self in (ErrorClass.BAD_REQUEST, ErrorClass.INTERRUPTED)


_RETRYABLE = frozenset(
    {
        ErrorClass.RATE_LIMITED,
        ErrorClass.OVERLOADED,
        ErrorClass.SERVER_ERROR,
        ErrorClass.TIMEOUT,
        ErrorClass.CONNECTION,
        ErrorClass.MALFORMED,
        ErrorClass.EMPTY,
    }
)


class LLMRouteError(Exception):
    exit_code: ExitCode = ExitCode.PROVIDER

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def lines(self) -> list[str]:
        """What the CLI prints: the failure, then what to do about it."""
        return [self.message] + ([self.hint] if self.hint else [])


class UsageError(LLMRouteError):
    exit_code = ExitCode.USAGE


class ConfigError(LLMRouteError):
    """Invalid config. `problems` holds one `path:line: message` string per problem."""

    exit_code = ExitCode.CONFIG

    def __init__(self, problems: list[str], hint: str | None = None):
        super().__init__(problems[0] if problems else "invalid config", hint)
        self.problems = problems

    def lines(self) -> list[str]:
        return list(self.problems) + ([self.hint] if self.hint else [])


class BudgetError(LLMRouteError):
    exit_code = ExitCode.BUDGET


class NoProviderError(LLMRouteError):
    exit_code = ExitCode.NO_PROVIDER


class KeyringUnavailable(LLMRouteError):
    exit_code = ExitCode.NO_PROVIDER


class ProviderError(LLMRouteError):
    """One failed provider call, classified per SPEC §4.1.

    `retry_after_s` is the server's own wait hint (Retry-After, retry-after-ms, Gemini
    RetryInfo) in seconds; `rate_limits` what the response headers said about the account's
    buckets. `partial_text` is set when a stream broke after text had been produced. `billed`
    is the provider's answer when it answered but the answer cannot be used (`empty`,
    `invalid_output`): that call was billed, so it is charged like any answer."""

    exit_code = ExitCode.PROVIDER

    def __init__(
        self,
        error_class: ErrorClass,
        message: str,
        *,
        http_status: int | None = None,
        retry_after_s: float | None = None,
        rate_limits: RateLimitInfo | None = None,
        partial_text: str = "",
        billed: Result | None = None,
    ):
        super().__init__(message)
        self.error_class = error_class
        self.http_status = http_status
        self.retry_after_s = retry_after_s
        self.rate_limits = rate_limits
        self.partial_text = partial_text
        self.billed = billed

    def __repr__(self) -> str:
        return f"ProviderError({self.error_class.value}, {self.http_status}, {self.message!r})"


class AllAttemptsFailed(LLMRouteError):
    """Every attempt of a request failed. Carries the attempts for the report."""

    exit_code = ExitCode.PROVIDER

    def __init__(self, message: str, attempts: list, hint: str | None = None):
        super().__init__(message, hint)
        self.attempts = attempts
