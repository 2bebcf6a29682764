"""Settings: defaults here, overridden by `resyn.toml` in the working directory, then by
environment variables (`RESYN_KERNEL__MEMORY_MB=1024`, `RESYN_VALIDATOR__SEEDS_PER_DIFFICULTY=4`)."""

from __future__ import annotations

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class KernelSettings(BaseModel):
    """Limits of the sandboxed kernels that run environment code."""

    pool_size: int = Field(2, ge=2, description="warm kernels; the determinism check needs two")
    memory_mb: int = Field(2048, description="address-space limit per kernel (RLIMIT_AS)")
    cpu_seconds: int = Field(120, description="CPU seconds one lease may use (RLIMIT_CPU)")
    file_size_mb: int = Field(16, description="largest file a kernel may write (RLIMIT_FSIZE)")
    max_processes: int = Field(512, description="RLIMIT_NPROC; the audit hook refuses new processes anyway")
    execution_timeout_s: float = Field(30.0, description="default wall-clock limit of one execution")
    interrupt_grace_s: float = Field(2.0, description="wait after an interrupt before restarting")
    startup_timeout_s: float = 30.0
    output_limit_bytes: int = Field(64_000, description="stdout/stderr kept per execution")
    output_abort_bytes: int = Field(4_000_000, description="output volume at which an execution is stopped")
    max_uses: int = Field(100, description="leases before a kernel is replaced anyway")
    allowed_env: list[str] = Field(
        default_factory=lambda: ["PATH", "LANG", "LC_ALL", "TZ"],
        description="parent environment variables a kernel inherits; nothing else crosses",
    )


class ValidatorSettings(BaseModel):
    seeds_per_difficulty: int = Field(8, ge=2)
    sample_seed: int = Field(20260, description="picks the seed values the validator samples")
    robust_instances: int = Field(3, description="instances each hostile answer is tried on")
    load_timeout_s: float = 10.0
    allowed_imports: list[str] = Field(
        default_factory=list, description="non-stdlib top-level modules environments may import"
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RESYN_", env_nested_delimiter="__", toml_file="resyn.toml", extra="ignore"
    )

    kernel: KernelSettings = KernelSettings()
    validator: ValidatorSettings = ValidatorSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))
