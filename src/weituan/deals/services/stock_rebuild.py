"""The Redis stock gate of a deal rebuilt from the database when a take finds it missing (Redis restarted
empty, flushed, or the keys evicted), by one process at a time.

After a restart every buyer of a busy sale finds the gate missing at once. Each rebuilding it would
read the deal's quotas from the database (one row per buyer) and rewrite the gate, over and over, and
a rewrite landing after others had already taken units in the rebuilt gate would wipe those takes out.
So the rebuild is single-flight:

- the first to find the gate missing takes the deal's rebuild lock (SET NX with an expiry, so that a
  rebuilder that dies frees it), and unless the gate is back by then, reads the database and writes the
  gate, only if it is still missing, in one script that also lets the lock go;
- the others wait, polling a few milliseconds apart, until the gate is there, then take from it; if its
  rebuilder dies, the lock expires and the next of them rebuilds it;
- one that has waited `REBUILD_WAIT` without a gate goes to the database without it (`stock_gate_take`
  returns False): its units are then taken by the database's conditional UPDATE alone, which is the
  final guard against overselling whatever the gate says.

A gate is only ever written where none exists, so a rebuild never undoes a take, and it is written
from committed rows, so it never counts a unit the database does not: at worst it counts fewer (an
order taken in the gate before the restart commits after the read), which lets a few more buyers reach
the database's guard and never refuses one wrongly.
"""

import time
import uuid
from typing import Any

from weituan.core.redis import get_redis, rkey, scripts_run
from weituan.deals.models import Deal, UserDealQuota

# A rebuild is two reads of the database and one script; a lock held longer than this belongs to a
# rebuilder that died, and the next waiter takes over.
REBUILD_LOCK_MS = 2_000
# How long a buyer waits for someone else's rebuild before going to the database without the gate.
REBUILD_WAIT = 5.0
_FIRST_PAUSE, _LONGEST_PAUSE = 0.002, 0.05

# KEYS: stock hash, quota hash, rebuild lock. ARGV: lock token, units released, units sold, then the
# quota's field and value pairs. Writes the gate only if the stock hash is still missing, then lets the
# lock go if it is still this rebuilder's. Returns 1 when it wrote the gate, 0 when one was there.
_REBUILD = """
local wrote = 0
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'released', ARGV[2], 'sold', ARGV[3])
  for index = 4, #ARGV, 2 do
    redis.call('HSET', KEYS[2], ARGV[index], ARGV[index + 1])
  end
  wrote = 1
end
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
return wrote
"""
# KEYS: rebuild lock. ARGV: lock token. Lets the lock go if it is still this rebuilder's.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""
_scripts: dict[tuple[int, str], Any] = {}


def stock_gate_rebuild(*, deal_id: int) -> bool:
    """Have the deal's missing gate rebuilt from the database, by this call or by the one already doing
    it; True once the gate is there (or the deal is gone: there is nothing to gate), False if it still
    is not after `REBUILD_WAIT`. Raises while Redis cannot be reached."""
    client = get_redis()
    stock_key, _, lock_key = _gate_keys(deal_id)
    token = uuid.uuid4().hex
    deadline = time.monotonic() + REBUILD_WAIT
    pause = _FIRST_PAUSE
    while True:
        if client.set(lock_key, token, nx=True, px=REBUILD_LOCK_MS):
            # Taken just after another rebuilder let it go: that one's gate is there, nothing to read.
            if client.exists(stock_key):
                _run(_RELEASE, [lock_key], token)
            else:
                _rebuild_if_missing(deal_id=deal_id, token=token)
            return True
        time.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE)
        if client.exists(stock_key):
            return True
        if time.monotonic() >= deadline:
            return False


def _rebuild_if_missing(*, deal_id: int, token: str) -> int:
    """Read the deal's units and its buyers' quotas, and write them as the gate if it is still missing
    (holding the rebuild lock `token`, which the write lets go). Returns 1 when it wrote the gate."""
    keys = _gate_keys(deal_id)
    deal = Deal.objects.filter(id=deal_id).values_list("released", "sold").first()
    if deal is None:
        return _run(_RELEASE, keys[2:], token)
    quotas: list[Any] = []
    for user_id, own, gifts in UserDealQuota.objects.filter(deal_id=deal_id).values_list(
        "user_id", "own", "gifts"
    ):
        quotas += [f"o:{user_id}", own, f"g:{user_id}", gifts]
    return _run(_REBUILD, keys, token, *deal, *quotas)


def _run(source: str, keys: list[str], *args: Any) -> int:
    """Run one of the rebuild's scripts by hash (loaded when the server does not hold it)."""
    client = get_redis()
    script = _scripts.get((id(client), source))
    if script is None:
        script = _scripts[(id(client), source)] = client.register_script(source)
    return int(scripts_run([(script, keys, args)])[0])


def _gate_keys(deal_id: int) -> list[str]:
    """The gate's stock and quota hashes (as `stock` names them) and its rebuild lock."""
    return [rkey("deal", deal_id, "stock"), rkey("deal", deal_id, "quota"), rkey("deal", deal_id, "rebuild")]
