"""`python -m llmroute.sampling_worker JOB`: the background half of a sampled A/B pair (SPEC §8).

The user's process (`sampling.start_sample`) has already answered, reserved this call's worst
case and handed the reservation to this process. Here the job is read (and removed), the same
config is loaded — the very file the user's process read, named explicitly so nothing is
re-discovered; a project config only while its trust record still matches it, the built-in
default config when there was no file — and `sampling.resume_sample` sends the call, records
it, judges or queues the pair, and settles or releases the reservation.

stdio is /dev/null (nobody is listening); whatever goes wrong ends here, and a reservation not
settled expires with this process.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping

from .paths import Paths


def load_job_config(spec: Mapping, env: Mapping[str, str], paths: Paths):
    """The config the user's process used; None when it cannot be used any more (a project
    config changed or untrusted since, an unreadable or now invalid file)."""
    from .config.defaults import default_config, keyring_has_key, local_model_available, probe_ollama, project_trust
    from .config.load import load_config, load_config_bytes
    from .errors import LLMRouteError

    path = spec.get("path")
    try:
        if not path:
            return default_config(env, keyring_has_key, probe_ollama, local_model_available)
        if spec.get("project"):
            check = project_trust(Path(path), paths)
            return load_config_bytes(check.content, Path(path)) if check.trusted else None
        return load_config(Path(path))
    except (LLMRouteError, OSError):
        return None


def run(job_path: Path, env: Mapping[str, str]) -> int:
    from .budget.guard import guard_for
    from .engine import Engine
    from .keys import KeyStore
    from .sampling import read_job, resume_sample

    job = read_job(job_path)
    paths = Paths(Path(job["paths"]["data"]), Path(job["paths"]["config"]))
    config = load_job_config(job["config"], env, paths)
    if config is None:
        return 1  # the reservation expires with this process
    quiet = lambda message: None  # noqa: E731 - stderr is /dev/null
    engine = Engine(config, paths=paths, keys=KeyStore(env), budget=guard_for(config, paths, env=env, warn=quiet),
                    warn=quiet)
    try:
        outcome = resume_sample(engine, job)
    finally:
        engine.close()
    return 0 if outcome is not None and outcome.other.ok else 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m llmroute.sampling_worker JOB\n")
        return 2
    return run(Path(args[0]), dict(os.environ))


if __name__ == "__main__":
    sys.exit(main())
