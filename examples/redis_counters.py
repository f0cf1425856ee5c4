"""Page-view counters shared by several worker processes, on Redis.

The code is what it would be on a file store; only ``open_views`` differs
(a file belongs to one process, a Redis namespace to every process that
opens it). ``update`` is atomic across the processes: no visit is lost.

    python redis_counters.py redis://localhost:6379/0
"""

import multiprocessing
import sys

import persist
from persist.redis import RedisMap, RedisStore

PAGES = ["/", "/about", "/pricing"]
WORKERS = 4
VISITS = 100  # per worker and page


def open_views(url: str) -> RedisMap[int]:
    store = RedisStore(url, namespace="counters")  # was: persist.Store("counters.db")
    return store.map("views", int)


def visit(upd: persist.Update[int]) -> None:
    upd.set((upd.value or 0) + 1)


def worker(url: str) -> None:
    views = open_views(url)
    for _ in range(VISITS):
        for page in PAGES:
            views.update(page, visit)
    views.store.close()


def main(url: str) -> None:
    views = open_views(url)
    views.clear()
    spawn = multiprocessing.get_context("spawn")
    workers = [spawn.Process(target=worker, args=(url,)) for _ in range(WORKERS)]
    for process in workers:
        process.start()
    for process in workers:
        process.join()
    for page in PAGES:
        print(f"{page}: {views[page]} views")
    views.store.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "redis://localhost:6379/0")
