"""Vestibule: enterprise single sign-on and user access for multi-tenant SaaS.

Layout (see README "Architecture"):

- ``vestibule.saml``, ``vestibule.oidc`` -- protocol code, plain Python, no Django.
- ``vestibule.domain`` -- protocol-independent rules: emails, the role catalog,
  the login pipeline's decisions.
- ``vestibule.accounts``, ``connections``, ``login``, ``audit``, ``api`` --
  Django apps that persist and serve the above.
- ``vestibule.conf`` -- settings built from ``VESTIBULE_*`` variables.
"""

__version__ = "0.1.0"
