"""struct sk_buff_head: a queue of skbs with its lock, and the skb_queue_* helpers.

Linux: include/linux/skbuff.h (skb_queue_tail, __skb_dequeue, ...),
net/core/skbuff.c (skb_queue_purge). Split from skbuff.py for size.
"""
import threading
from collections import deque

from .skbuff import SKB_DROP_REASON_NOT_SPECIFIED, SkBuff, kfree_skb


class SkBuffHead:
    """struct sk_buff_head: a packet queue with its own lock and length.

    Emulation note: a deque instead of prev/next pointers in each SkBuff.
    """

    __slots__ = ("q", "lock")

    def __init__(self):
        self.q: deque[SkBuff] = deque()
        self.lock = threading.Lock()

    @property
    def qlen(self):
        return len(self.q)

    def __len__(self):
        return len(self.q)

    def __bool__(self):
        return bool(self.q)


def skb_queue_head_init(lst=None):
    if lst is None:
        return SkBuffHead()
    lst.q.clear()
    return lst


def __skb_queue_tail(lst, skb):
    lst.q.append(skb)


def __skb_queue_head(lst, skb):
    lst.q.appendleft(skb)


def __skb_dequeue(lst):
    return lst.q.popleft() if lst.q else None


def __skb_dequeue_tail(lst):
    return lst.q.pop() if lst.q else None


def skb_queue_tail(lst, skb):
    with lst.lock:
        lst.q.append(skb)


def skb_queue_head(lst, skb):
    with lst.lock:
        lst.q.appendleft(skb)


def skb_dequeue(lst):
    with lst.lock:
        return lst.q.popleft() if lst.q else None


def skb_dequeue_tail(lst):
    with lst.lock:
        return lst.q.pop() if lst.q else None


def skb_peek(lst):
    return lst.q[0] if lst.q else None


def skb_queue_len(lst):
    return len(lst.q)


def skb_queue_empty(lst):
    return not lst.q


def skb_queue_purge(lst, reason=SKB_DROP_REASON_NOT_SPECIFIED):
    with lst.lock:
        items = list(lst.q)
        lst.q.clear()
    for skb in items:
        kfree_skb(skb, reason)
