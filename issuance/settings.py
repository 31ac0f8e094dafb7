"""One frozen settings object, read from ISSUANCE_* environment variables in entry points only."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything configurable; defaults match docker-compose.yml where a server is configured."""

    model_config = SettingsConfigDict(env_prefix="ISSUANCE_", frozen=True, extra="ignore")

    # Servers. When both are unset, the embedded services under state_dir are used.
    kafka_bootstrap: str | None = None
    database_url: SecretStr | None = None
    state_dir: Path = Path(".issuance")

    # Key material for sensitive data at rest. Data keys: "kid:base64key[,kid:base64key...]", the first
    # one encrypts, every one decrypts (rotation). The blind-index key is separate from the data keys.
    # With no keys configured the embedded default keeps generated development keys in state_dir.
    data_keys: SecretStr | None = None
    blind_index_key: SecretStr | None = None
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
    # Processes the outbox relay spreads a large backlog over (0: one per CPU).
    relay_processes: int = Field(default=0, ge=0)
    personalization_dir: Path = Path(".issuance/personalization")

    @property
    def development_keys_allowed(self) -> bool:
        """Whether missing keys may be generated: only when both servers are the embedded ones. With a
        configured broker or database, missing keys are a configuration error (fail closed)."""
        return self.kafka_bootstrap is None and self.database_url is None
