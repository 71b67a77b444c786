"""Tenancy's own settings: API keys, invitations, verification, two-factor, trials, and the mailer's SMTP.

Same `ONE_` names as ever; the common ones (database, NATS, data dir) come from the kernel `Settings`.
"""

from pathlib import Path

from pydantic import Field, SecretStr

from shared.kernel.settings import Settings


class TenancySettings(Settings):
    api_key_pepper: SecretStr | None = Field(
        None,
        description="Server-side secret mixed into every API key and invite token hash (HMAC-SHA256). "
        "Unset = generated once into `<data_dir>/tenancy/pepper`; set it explicitly when replicas don't share a data dir.",
    )
    sealing_keks: SecretStr | None = Field(
        None, description="Key-encryption keys of the secrets sealed at rest (docs/sealing.md), as JSON "
        '`{"current": id, "keys": {id: base64 of 32 bytes}}`. Unset = `<data_dir>/keys/<service>.keks.json`, generated '
        "once and rotated by `one keys rotate`; set, they rotate by changing this setting.",
    )
    key_cache_ttl: float = Field(2.0, ge=0.0, description="Seconds a verified API key is served from memory; bounds revocation delay.")
    invite_ttl: float = Field(7 * 86400.0, gt=0.0, description="Seconds an invitation stays valid.")
    email_verification_ttl: float = Field(86400.0, gt=0.0, description="Seconds an email verification token stays valid.")
    email_verification_per_hour: int = Field(5, ge=1, description="Verification emails one person may ask for per hour and org.")
    totp_issuer: str = Field("ONE", min_length=1, description="The issuer an authenticator app shows for a TOTP secret.")
    trial_days: int = Field(14, ge=0, description="Length of the trial of an organization created by signup.")
    platform_owner_email: str = Field("owner@one.local", description="The platform owner bootstrap creates.")

    smtp_host: str | None = Field(
        None, description="SMTP server the mailer delivers through. Unset = each mail is written to `<mail_dir>` as an .eml file."
    )
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = Field(True, description="Upgrade the connection with STARTTLS before logging in (port 587).")
    smtp_implicit_tls: bool = Field(False, description="TLS from the first byte (SMTPS, port 465); STARTTLS is then not used.")
    smtp_timeout: float = Field(20.0, gt=0, description="Seconds one SMTP connection or command may take.")
    mail_from: str = Field("ONE <no-reply@one.local>", description="The From header (and envelope sender) of every mail.")
    mail_dir: Path | None = Field(None, description="Where mails go without an SMTP host; unset = <data_dir>/mail.")
    mail_retries: int = Field(4, ge=0, description="Retries of a mail after a transient SMTP failure (refused connection, 4xx).")
    mail_retry_delay: float = Field(1.0, ge=0, description="Seconds before the first retry; doubles per retry.")
    mailer_concurrency: int = Field(8, ge=1, description="Mails one mailer replica delivers at once.")
    mailer_heartbeat_interval: float = Field(
        10.0, gt=0, description="Seconds between the mailer's NATS round trips that refresh its heartbeat file (probes)."
    )

    @property
    def mail_path(self) -> Path:
        return self.mail_dir or self.data_dir / "mail"
