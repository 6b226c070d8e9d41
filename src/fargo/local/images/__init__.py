"""Docker builds as far as a process-based twin can honour them: images from Dockerfiles.

    plan = plan_build(parse_file(dockerfile))      # what to do: pure, no files touched
    plan.notes                                      # what the twin does not do as Docker would
    built = ImageBuilder(state_dir).build("web", context, dockerfile)
    built.root                                      # the image's files (/app → root/app)
    built.config.environment                        # its Python environment (a uv venv)

- `fargo.local.images.plan`: a parsed Dockerfile (`fargo.dockerfile`) → a `BuildPlan`:
  the Python version of ``FROM python:X.Y…``, the files ``COPY``/``ADD`` lay out (also
  ``COPY --from`` an earlier stage), the installs ``RUN pip install …`` asks for,
  ``WORKDIR``, ``ENV``, ``USER``, ``EXPOSE``, ``HEALTHCHECK``, ``ENTRYPOINT`` and ``CMD``;
  every instruction it cannot honour becomes a `Note` with the Dockerfile's file and line.
- `fargo.local.images.run`: a ``RUN`` line read as the simple commands it is made of.
- `fargo.local.images.python` and `fargo.local.images.environment`: an interpreter of the
  ``FROM`` image's Python version on this machine, and one virtual environment per set of
  requirements, made and filled by ``uv``, cached by content.
- `fargo.local.images.builder`: runs a plan (the image's root folder, its environment,
  its run configuration), cached by the digest of what the build reads; a new state
  folder copies an identical image's files from this machine's cache
  (`fargo.local.images.layouts`, `fargo.local.images.cache`).
- `fargo.local.images.launch`: a task's argv, environment and working directory from its
  image; `fargo.local.images.rootfs` lays out the image's folders at their absolute paths
  in a task's private mount namespace (VPC mode).
"""
