"""Which librdkafka client overrides (`spec.kafka.consumer` / `.producer`) a StreamQuery may set.

A StreamQuery author is not a cluster administrator, so the overrides may tune the clients but
never (librdkafka's CONFIGURATION.md is the reference):

- carry or downgrade security settings: `sasl.*`, `ssl.*`, `https.*`, `enable.ssl.*`,
  `enable.sasl.*` and `security.protocol` belong in the Secret named by `kafka.secretRef`
  (overrides win over that file, so `security.protocol=plaintext` would send its password in
  clear text); `bootstrap.servers` and `group.id` are the operator's;
- load or run code (E420): `plugin.library.paths` (dlopen), anything naming a `library`,
  `plugin` or `interceptor`, anything `oauthbearer` (token commands and callbacks), any `*.cmd`
  (`sasl.kerberos.kinit.cmd` runs a shell command), and every name with an underscore but
  `log_level`: those are C-API handles and callbacks (`*_cb`, `opaque`, `default_topic_conf`)
  or the Python client's callables (`on_delivery`, `logger`), which would also replace the
  runtime's own delivery-failure handling;
- weaken the delivery guarantee (E421): the runtime produces idempotently with `acks=all`, reads
  only committed records and commits offsets itself, after its state checkpoint. So `acks` /
  `request.required.acks` must be `all` or `-1`, `enable.idempotence` true, `isolation.level`
  `read_committed`, and `enable.auto.commit` / `auto.commit.enable` false. Values are judged by
  an allow-list, compared case-insensitively as librdkafka does: librdkafka parses integers
  with `strtol`, so `0x0` or `0all` are 0, and only the listed spellings are known to be safe.

Each rule exists twice, as a pydantic check and as a CEL rule of the CRD; tests feed the same
cases to both (tests/unit/operator/spec_cases.py).
"""

from __future__ import annotations

import re

from pydantic import JsonValue

from streamhouse_runtime.sql.errors import ErrorCode

# librdkafka property names: lower-case words joined by dots (underscores: see below).
KAFKA_PROPERTY_PATTERN = r"^[a-z][a-z0-9._]{0,127}$"

RESERVED_PREFIXES = ("sasl.", "ssl.", "https.", "enable.ssl.", "enable.sasl.")
RESERVED_PROPERTIES = ("bootstrap.servers", "group.id", "security.protocol")

CODE_LOADING_PROPERTIES = ("plugin.library.paths", "interceptors")
CODE_LOADING_WORDS = ("library", "plugin", "interceptor", "oauthbearer")
# The one librdkafka property with an underscore that is a plain value.
UNDERSCORE_ALLOWED = ("log_level",)

# property -> the values (lower-case) that keep the runtime's guarantee.
DELIVERY_SETTINGS: dict[str, tuple[str, ...]] = {
    "acks": ("all", "-1"),
    "request.required.acks": ("all", "-1"),
    "enable.idempotence": ("true", "t", "1"),
    "isolation.level": ("read_committed",),
    "enable.auto.commit": ("false", "f", "0"),
    "auto.commit.enable": ("false", "f", "0"),
}

RESERVED_MESSAGE = (
    "keys must be librdkafka property names; sasl.*, ssl.*, https.*, enable.ssl.*, "
    "enable.sasl.* and security.protocol belong in the Secret named by kafka.secretRef, and "
    "bootstrap.servers and group.id are set by the operator"
)
CODE_MESSAGE = (
    f"error[{ErrorCode.KAFKA_OVERRIDE_LOADS_CODE.value}]: client overrides may not load or run "
    "code: plugin.library.paths, interceptors, *library*, *plugin*, *interceptor*, "
    "*oauthbearer*, *.cmd and names with '_' (callbacks; log_level excepted) are refused"
)
DELIVERY_MESSAGE = (
    f"error[{ErrorCode.KAFKA_OVERRIDE_WEAKENS_DELIVERY.value}]: client overrides may not weaken "
    "the delivery guarantee: acks and request.required.acks must be all or -1, "
    "enable.idempotence true, isolation.level read_committed, enable.auto.commit and "
    "auto.commit.enable false (the runtime commits offsets after its checkpoint)"
)


def _cel_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{value}'" for value in values) + "]"


_RESERVED_RULE = (
    f"self.all(k, k.matches('{KAFKA_PROPERTY_PATTERN}')"
    + "".join(f" && !k.startsWith('{prefix}')" for prefix in RESERVED_PREFIXES)
    + f" && !(k in {_cel_list(RESERVED_PROPERTIES)}))"
)
_CODE_RULE = (
    f"self.all(k, !(k in {_cel_list(CODE_LOADING_PROPERTIES)})"
    + "".join(f" && !k.contains('{word}')" for word in CODE_LOADING_WORDS)
    + " && !k.endsWith('.cmd')"
    + f" && (!k.contains('_') || k in {_cel_list(UNDERSCORE_ALLOWED)}))"
)
_DELIVERY_RULE = (
    "self.all(k, "
    + " && ".join(
        f"(k != '{key}' || self[k].lowerAscii() in {_cel_list(allowed)})"
        for key, allowed in DELIVERY_SETTINGS.items()
    )
    + ")"
)

# Typed for pydantic's json_schema_extra, which holds JSON values.
CEL_RULES: list[JsonValue] = [
    {"rule": _RESERVED_RULE, "message": RESERVED_MESSAGE},
    {"rule": _CODE_RULE, "message": CODE_MESSAGE},
    {"rule": _DELIVERY_RULE, "message": DELIVERY_MESSAGE},
]


def _ascii_lower(text: str) -> str:
    """CEL's lowerAscii(): only A-Z change, as in librdkafka's strcasecmp."""
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def _loads_code(key: str) -> bool:
    return (
        key in CODE_LOADING_PROPERTIES
        or any(word in key for word in CODE_LOADING_WORDS)
        or key.endswith(".cmd")
        or ("_" in key and key not in UNDERSCORE_ALLOWED)
    )


def override_problem(key: str, value: str) -> str | None:
    """Why one override is refused (the CEL rules' message, and the key), or None."""
    reserved = key in RESERVED_PROPERTIES or key.startswith(RESERVED_PREFIXES)
    if reserved or not re.fullmatch(KAFKA_PROPERTY_PATTERN, key):
        return f"{key!r}: {RESERVED_MESSAGE}"
    if _loads_code(key):
        return f"{key!r}: {CODE_MESSAGE}"
    allowed = DELIVERY_SETTINGS.get(key)
    if allowed is not None and _ascii_lower(value) not in allowed:
        return f"{key}={value!r}: {DELIVERY_MESSAGE}"
    return None
