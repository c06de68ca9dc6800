"""Who may act, and on what (DESIGN "Authority" and "Identity ownership").

``principal`` says who is acting — a signed-in person holding admin roles in
an account, or an API key scoped to one account and a subset of those roles —
and ``ownership`` says which account owns a person's identity. The API and the
console ask these two modules, never a key's account or a role table directly.
"""
