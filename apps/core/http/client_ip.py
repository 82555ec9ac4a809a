"""The client's address, trusting X-Forwarded-For only as many hops deep as we have proxies.

Each trusted proxy (nginx, then perhaps a load balancer) appends the address it saw to
X-Forwarded-For. Entries left of those were written by the client and may be forged, so the
client is the entry NUM_PROXIES from the right; with no proxy it is REMOTE_ADDR. DRF's
throttles apply the same rule through REST_FRAMEWORK["NUM_PROXIES"], so lockouts and throttles
agree on who the client is.
"""

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    remote_addr = str(request.META.get("REMOTE_ADDR", ""))
    num_proxies = settings.NUM_PROXIES
    forwarded_for = request.META.get("HTTP_X_FORWARDED_FOR")
    if num_proxies <= 0 or not forwarded_for:
        return remote_addr
    hops = [hop.strip() for hop in str(forwarded_for).split(",") if hop.strip()]
    return hops[-min(num_proxies, len(hops))] if hops else remote_addr
