"""Settings: defaults here, overridden by `resyn.toml` in the working directory, then by
environment variables: `RESYN_<SECTION>_<FIELD>`, e.g. `RESYN_KERNEL_MEMORY_MB=1024`,
`RESYN_LLM_BASE_URL=http://localhost:8000/v1`, `RESYN_AUTHOR_MODEL=qwen2.5-coder-32b`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

SandboxMode = Literal["bwrap", "none"]


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
    tmp_size_mb: int = Field(
        256, description="size of each kernel's private /tmp under bwrap (held in memory)"
    )
    preload: list[str] = Field(
        default_factory=list,
        description="modules every kernel imports when it starts, before its audit hook is armed, and keeps "
        "across resets; Settings sets it to validator.allowed_imports",
    )
    sandbox: SandboxMode = Field(
        "bwrap",
        description="the OS sandbox around every kernel: bwrap (bubblewrap), or none to run code unconfined",
    )
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


class RoleSettings(BaseModel):
    """One model role's endpoint; an unset field falls back to the `llm` defaults."""

    base_url: str | None = Field(
        None, description="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1"
    )
    model: str | None = None
    api_key: SecretStr | None = None
    temperature: float | None = None
    max_tokens: int | None = None


class LLMSettings(RoleSettings):
    """Defaults for every role (RESYN_LLM_*). No base URL at all means the embedded model."""

    temperature: float | None = 0.7
    max_tokens: int | None = 4096
    timeout_s: float = Field(180.0, description="one request's time limit")
    retries: int = Field(
        3, ge=0, description="quick retries of a transient fault (timeout, 429, 5xx, refused, bad body)"
    )
    retry_initial_s: float = Field(1.0, gt=0, description="first backoff; doubles per retry, jittered")
    outage_check_max_s: float = Field(
        60.0, gt=0, description="longest wait between checks of an endpoint that is down (and backoff cap)"
    )
    max_outage_s: float | None = Field(
        None, gt=0, description="an outage longer than this stops the work, to be resumed (unset: wait)"
    )
    max_concurrency: int = Field(8, ge=1, description="requests in flight per endpoint")


class ResolvedModel(BaseModel):
    """What one role talks to, after the per-role overrides fell back to the defaults."""

    role: str
    base_url: str | None
    model: str | None
    api_key: SecretStr | None
    temperature: float | None
    max_tokens: int | None


class EmbeddedSettings(BaseModel):
    """The bundled small model, served on loopback by llama-cpp-python when no endpoint is set."""

    threads: int = 2
    context_tokens: int = 8192
    max_tokens: int = 1024
    startup_timeout_s: float = 60.0


class SynthesisSettings(BaseModel):
    max_repairs: int = Field(3, ge=0, description="repairs after the first draft before giving up")
    exemplars: int = Field(2, ge=0, description="example environments shown to the author")
    probe_instances: int = Field(4, ge=1, description="solver probes per difficulty")
    probe_seed: int = Field(7_000_000, description="first seed of the probe instances")
    max_missing_answers: float = Field(
        0.1,
        ge=0,
        le=1,
        description="share of probe answers that may be lost to faults (else the probe is void)",
    )
    min_pass_rate: float = Field(0.0, description="overall pass rate must be above this (else unsolvable)")
    max_pass_rate: float = Field(1.0, description="overall pass rate must be below this (else too easy)")
    max_difficulty_rise: float = Field(
        0.25, description="how much the hard levels (4-5) may beat the easy ones (1-2) before it is noise"
    )
    min_topic_similarity: float = Field(
        0.4,
        ge=-1,
        le=1,
        description="cosine of TOPIC, NAME and DESCRIPTION to the asked topic below which it is off topic",
    )


class FrontierSettings(BaseModel):
    """How the expansion job picks its next topics (the rule is spelled out in docs/expansion.md).

    score = explore / (1 + attempts) + distance * (1 - similarity to the nearest accepted environment)
            - failure * (failed attempts / attempts)
    Topics tried `max_topic_attempts` times, or failing `max_failure_streak` times in a row, retire.
    """

    explore: float = Field(1.0, description="weight of being under-explored")
    distance: float = Field(1.0, description="weight of being far from every accepted environment")
    failure: float = Field(0.5, description="weight of the topic's failure rate (subtracted)")
    max_topic_attempts: int = Field(3, ge=1, description="attempts after which a topic retires")
    max_failure_streak: int = Field(2, ge=1, description="failures in a row after which a topic retires")


class ExpansionSettings(BaseModel):
    """The diversity memory and the long job (`resyn expand`)."""

    concurrency: int = Field(8, ge=1, description="environments in flight (default of --concurrency)")
    duplicate_threshold: float = Field(
        0.92, description="cosine similarity to an accepted environment at which a new one is a duplicate"
    )
    similar_topic_threshold: float = Field(
        0.75, description="cosine at which two topics get a 'similar' edge"
    )
    topic_duplicate_threshold: float = Field(
        0.9, description="cosine at which a scouted topic is a duplicate of a known one and dropped"
    )
    scout_batch: int = Field(8, ge=1, description="topics asked of the scout per call")
    novelty_questions: int = Field(3, ge=0, description="sample questions embedded with name and description")
    benchmark_dir: Path | None = Field(
        None, description="BBH/BBEH data (official JSON layout) for the contamination guard; unset = off"
    )
    contamination_threshold: float = Field(
        0.85, description="cosine to a benchmark input at which a sample question is flagged"
    )
    frontier: FrontierSettings = FrontierSettings()
    heartbeat_s: float = Field(
        5.0, gt=0, description="how often a worker on a shared database beats and looks for orphaned work"
    )
    worker_expiry_s: float = Field(
        30.0, gt=0, description="silence after which a worker counts as gone and its syntheses are taken up"
    )


class PriceSettings(BaseModel):
    """What each role's tokens cost, in USD per million tokens (RESYN_PRICES_AUTHOR_INPUT=3.0, …),
    for the cost estimate of `resyn jobs`, the viewer and `resyn report`. Unset: no estimate."""

    author_input: float | None = Field(None, ge=0, description="USD per million input tokens of the author")
    author_output: float | None = Field(None, ge=0, description="USD per million output tokens of the author")
    solver_input: float | None = Field(None, ge=0, description="USD per million input tokens of the solver")
    solver_output: float | None = Field(None, ge=0, description="USD per million output tokens of the solver")
    scout_input: float | None = Field(None, ge=0, description="USD per million input tokens of the scout")
    scout_output: float | None = Field(None, ge=0, description="USD per million output tokens of the scout")

    @property
    def configured(self) -> bool:
        """Whether any price is set (else resyn shows no cost at all)."""
        return any(price is not None for price in self.model_dump().values())

    def cost(self, role: str, input_tokens: int, output_tokens: int) -> float | None:
        """The estimated cost of a role's tokens, or None when a price they need is unset."""
        parts = [
            (tokens, getattr(self, f"{role}_{kind}", None))
            for tokens, kind in ((input_tokens, "input"), (output_tokens, "output"))
            if tokens
        ]
        if any(price is None for _tokens, price in parts):
            return None
        return sum(tokens * price for tokens, price in parts) / 1_000_000


class ToolSettings(BaseModel):
    """The tools other agents call (LangChain tools, `resyn mcp`): what one caller may hold."""

    max_sessions: int = Field(
        4, ge=1, description="run_python sessions kept at once; a new one closes the least recently used"
    )
    session_idle_s: float = Field(600.0, gt=0, description="a run_python session unused this long is closed")
    run_timeout_s: float = Field(30.0, gt=0, description="run_python's time limit when the caller names none")
    max_run_timeout_s: float = Field(120.0, gt=0, description="the longest time limit run_python grants")
    call_timeout_s: float = Field(300.0, gt=0, description="wall-clock limit of one call of any other tool")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RESYN_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        toml_file="resyn.toml",
        extra="ignore",
    )

    data_dir: Path = Field(Path("resyn-data"), description="the workspace: library, checkpoints, files")
    database_url: SecretStr | None = Field(
        None,
        description="postgresql://… : the library, traces and checkpoints on a server that many"
        " workers share (docs/scale.md); unset, they are SQLite files in data_dir",
    )
    kernel: KernelSettings = KernelSettings()
    validator: ValidatorSettings = ValidatorSettings()
    llm: LLMSettings = LLMSettings()
    author: RoleSettings = RoleSettings()
    solver: RoleSettings = RoleSettings()
    scout: RoleSettings = RoleSettings()
    embedded: EmbeddedSettings = EmbeddedSettings()
    synthesis: SynthesisSettings = SynthesisSettings()
    expansion: ExpansionSettings = ExpansionSettings()
    tools: ToolSettings = ToolSettings()
    prices: PriceSettings = PriceSettings()

    @model_validator(mode="after")
    def _kernels_preload_the_allowed_imports(self) -> Settings:
        """One list: what environments may import is what every kernel imports when it starts
        (docs/validation.md, "Allowed imports"); the pools get it with `kernel`."""
        if self.kernel.preload != self.validator.allowed_imports:
            self.kernel = self.kernel.model_copy(update={"preload": list(self.validator.allowed_imports)})
        return self

    @field_validator("database_url")
    @classmethod
    def _a_postgres_url(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and not url.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL (leave it unset for the SQLite workspace)")
        return url

    @property
    def database_url_value(self) -> str | None:
        """The URL itself, for the code that connects; it is a secret everywhere else."""
        return self.database_url.get_secret_value() if self.database_url else None

    def model_for(self, role: str) -> ResolvedModel:
        override: RoleSettings = getattr(self, role)
        fields = ("base_url", "model", "api_key", "temperature", "max_tokens")
        chosen = {name: _first_set(getattr(override, name), getattr(self.llm, name)) for name in fields}
        return ResolvedModel(role=role, **chosen)

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


def _first_set(*values: object) -> object:
    return next((value for value in values if value is not None), None)
