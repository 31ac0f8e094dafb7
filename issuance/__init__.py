"""ssc-issuance: social security cards with a bank savings function, issued and activated."""

__version__ = "0.1.0"
