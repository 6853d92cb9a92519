"""Schemathesis hooks of the contract suite (loaded through SCHEMATHESIS_HOOKS).

Jobs fetch the URL a task carries. Generated data holds arbitrary URLs, and a test must reach
nothing outside this machine, so before each call every http(s) `url` in a request body is pointed
at a closed port on the loopback address: the execution worker's attempt fails at once, locally.
URLs that are not http(s) stay as generated, for the contract to refuse.

An API key's `expireTime` must lie ahead of the clock (`timestamp.gt_now`), which a schema cannot
say: positive cases that drew a moment in the past get one a day ahead instead.

A `timeZone` (a provider's, or the one slots are shown in) must name a zone of the IANA database,
a list a schema does not carry: positive cases that drew another string get `Europe/Berlin`.

Four query parameters have a grammar that the schema states in prose, not in JSON Schema: `filter`
(AIP-160), `orderBy` (AIP-132), `pageToken` (a token an earlier page returned) and `updateMask`
(the fields each update method changes). A value drawn at random for them is no valid request, so
positive cases leave them out; negative cases keep them, and the services' own tests cover them.
"""

import datetime
import zoneinfo

import schemathesis

LOCAL_TARGET = "http://127.0.0.1:9/"


def _keep_local(value):
    if isinstance(value, dict):
        for key, item in value.items():
            if (
                key == "url"
                and isinstance(item, str)
                and item.lower().startswith(("http://", "https://"))
            ):
                value[key] = LOCAL_TARGET
            else:
                _keep_local(item)
    elif isinstance(value, list):
        for item in value:
            _keep_local(item)


GRAMMAR_PARAMETERS = ("filter", "orderBy", "pageToken", "updateMask")


def _positive(case):
    meta = getattr(case, "meta", None)
    generation = getattr(meta, "generation", None)
    mode = getattr(generation, "mode", None)
    return bool(getattr(mode, "is_positive", False))


def _expiry_ahead(body):
    if not isinstance(body, dict) or not isinstance(body.get("expireTime"), str):
        return
    try:
        moment = datetime.datetime.fromisoformat(body["expireTime"].replace("Z", "+00:00"))
    except ValueError:
        return
    now = datetime.datetime.now(datetime.timezone.utc)
    if moment.tzinfo is not None and moment <= now:
        ahead = now + datetime.timedelta(days=1)
        body["expireTime"] = ahead.strftime("%Y-%m-%dT%H:%M:%SZ")


ZONES = zoneinfo.available_timezones()


def _known_zone(value):
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "timeZone" and isinstance(item, str) and item not in ZONES:
                value[key] = "Europe/Berlin"
            else:
                _known_zone(item)


@schemathesis.hook
def before_call(ctx, case, kwargs):
    _keep_local(case.body)
    if _positive(case):
        _expiry_ahead(case.body)
        _known_zone(case.body)
        _known_zone(case.query)
    if _positive(case) and isinstance(case.query, dict):
        for name in GRAMMAR_PARAMETERS:
            case.query.pop(name, None)
