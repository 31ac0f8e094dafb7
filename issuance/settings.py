"""One frozen settings object, read from ISSUANCE_* environment variables in entry points only."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from issuance import i18n
from issuance.errors import ConfigurationError


class Settings(BaseSettings):
    """Everything configurable; defaults match docker-compose.yml where a server is configured."""

    model_config = SettingsConfigDict(env_prefix="ISSUANCE_", frozen=True, extra="ignore")

    # The language people read (issuance/i18n.py): zh_CN (Simplified Chinese, the default) or en. Any tag that
    # names one of them is accepted (zh, zh-CN, en-US) and kept as its code; another language stops at start.
    language: str = i18n.DEFAULT

    # Servers. When both are unset, the embedded services under state_dir are used.
    kafka_bootstrap: str | None = None
    # How every Kafka client authenticates to a configured broker and protects the connection; one function
    # turns these into client arguments (issuance/kafka/client_config.py). PLAINTEXT suits only the embedded
    # broker on loopback; a deployment uses SASL_SSL. The SASL mechanism defaults to SCRAM-SHA-512 when a
    # SASL protocol is chosen. SSL needs the CA file that signed the broker's certificate; the client
    # certificate and key are for brokers that also ask clients for one (mutual TLS).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_password: SecretStr | None = None
    kafka_ssl_check_hostname: bool = True
    database_url: SecretStr | None = None
    state_dir: Path = Path(".issuance")

    # Key material for sensitive data at rest (issuance/vault_keys.py). Data keys: "kid:base64key[,...]", the
    # first one encrypts, every one decrypts (rotation). The blind-index key is separate from the data keys.
    # Each comes from its variable, else the file its *_FILE variable names (a mounted secret), else
    # keys_dir/data-keys and keys_dir/blind-index-key. Generated into keys_dir with the embedded services
    # only; otherwise missing keys are a configuration error.
    data_keys: SecretStr | None = None
    data_keys_file: Path | None = None
    blind_index_key: SecretStr | None = None
    blind_index_key_file: Path | None = None
    # The blind-index key being replaced, only while `issuance keys rotate --blind-index-key` runs (else
    # keys_dir/previous-blind-index-key).
    previous_blind_index_key: SecretStr | None = None
    previous_blind_index_key_file: Path | None = None
    # Where key files live: the bureau's keys and, with the embedded services only, the simulated partners'.
    # Never inside state_dir (the data they protect); a deployment mounts it from a secret store.
    keys_dir: Path = Path(".issuance-keys")
    # The bureau's own signing and sealing private keys: the text of a party key file (issuance keys generate
    # --party bureau:bureau writes one). Unset: keys_dir/bureau.key, generated there only with the embedded
    # services; with a configured broker or database a missing bureau key stops every command that needs it.
    bureau_key: SecretStr | None = None

    # Topics.
    topic_prefix: str = ""
    application_partitions: int = Field(default=4, ge=1)
    agreement_partitions: int = Field(default=4, ge=1)
    bank_partitions: int = Field(default=2, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    # The largest message the relay publishes (and its producer's max_request_size): Apache Kafka's default
    # message.max.bytes (1,048,588) less headroom for the record batch's own framing. An event larger than
    # this is set aside, never sent. Raise it only together with the broker's and the topics' limits.
    max_message_bytes: int = Field(default=1_000_000, ge=64 * 1024)

    # Consumers: a consumer that holds no partition of its topics for this long stops with exit 1 (a group
    # that cannot settle is an error for its supervisor, not a silent idle process).
    consumer_join_timeout_s: float = Field(default=60.0, gt=0)

    # Business rules that are configuration, not contract.
    agreement_window_days: int = Field(default=30, ge=1)
    # Requests to a bank (to open an account, to activate it) refused this many times fail the application.
    max_activation_attempts: int = Field(default=3, ge=1)
    # A card the vendor could not make is put into a later vendor file until it failed this many times.
    max_productions: int = Field(default=3, ge=1)
    # A card at the branch not collected within this many days is listed for the branch (reminder report).
    collection_reminder_days: int = Field(default=30, ge=1)
    # The night sends a bank request (account opening or activation) again when its application still waits
    # for the bank's answer this many hours after it was published (the broker may have lost it; a bank's
    # inbox makes a repeat harmless).
    resend_unanswered_after_hours: float = Field(default=24.0, ge=0)

    # Nightly batch.
    # The largest record value a night decodes. A contract record is at most a few KiB (its texts are bounded,
    # see issuance/domain/contract.py); anything larger is dead-lettered OVERSIZED_MESSAGE without decoding.
    max_record_bytes: int = Field(default=16_384, ge=4_096)
    chunk_size: int = Field(default=20_000, ge=1)
    # A night planned with at least this many records runs Beam's workers in `beam_workers` processes (unless
    # the Beam options given to `batch run` choose a running mode) and personalizes in a helper process beside
    # the final transaction; smaller nights do both in-process, which starts faster. beam_workers 0 means one
    # per CPU.
    parallel_from_records: int = Field(default=50_000, ge=0)
    beam_workers: int = Field(default=0, ge=0)
    # What runs the night's Beam stage (pipelines/README.md, "Engines"): Beam's DirectRunner on this machine,
    # or Beam's DaskRunner on a Dask cluster. With dask: the scheduler at dask_address (tcp://host:8786, or
    # tls://), else a cluster of `beam_workers` worker processes started on this machine for the run.
    engine: Literal["direct", "dask"] = "direct"
    dask_address: str | None = None
    # Processes the outbox relay spreads a large backlog over (0: one per CPU).
    relay_processes: int = Field(default=0, ge=0)
    personalization_dir: Path = Path(".issuance/personalization")

    # Dashboard (see dashboard/README.md, "Security").
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed: addresses or CIDRs, comma separated.
    # Empty: no proxy is trusted and the client is the TCP peer, whoever it is (a local peer included).
    dashboard_trusted_proxies: str = ""
    # The largest request body read (a login form is a few hundred bytes); larger is answered 413 unread.
    dashboard_max_body_bytes: int = Field(default=16_384, ge=1_024)
    # A session ends after this long without a request, and in any case this long after the login.
    dashboard_session_idle_minutes: int = Field(default=30, ge=1)
    dashboard_session_hours: int = Field(default=8, ge=1)

    @field_validator("language")
    @classmethod
    def _language_is_supported(cls, value: str) -> str:
        """The supported code the setting names; an unsupported language is refused, never replaced."""
        try:
            return i18n.normalize(value)
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("dashboard_trusted_proxies")
    @classmethod
    def _trusted_proxies_are_networks(cls, value: str) -> str:
        """Each entry an IP address or CIDR, refused at start instead of silently trusting nothing."""
        for entry in value.split(","):
            if entry.strip():
                ipaddress.ip_network(entry.strip(), strict=False)
        return value

    @property
    def development_keys_allowed(self) -> bool:
        """Whether missing keys may be generated: only when both servers are the embedded ones. With a
        configured broker or database, missing keys are a configuration error (fail closed)."""
        return self.kafka_bootstrap is None and self.database_url is None
