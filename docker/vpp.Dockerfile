# Real FD.io VPP with the vppmesh agent, for users' labs and hosts.
# Not built by CI (it needs Debian and FD.io's package repository):
#   docker build -f docker/vpp.Dockerfile -t vppmesh/vpp:lab bin/static
# FD.io publishes VPP packages at https://packagecloud.io/fdio/release; pick the
# release matching govpp's binapi (25.10). The startup.conf comes from
# vpp-config/ (bind-mount it at /etc/vpp/startup.conf).
FROM debian:bookworm-slim
ARG VPP_VERSION=25.10
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gnupg \
 && curl -fsSL https://packagecloud.io/install/repositories/fdio/release/script.deb.sh | bash \
 && apt-get install -y --no-install-recommends "vpp=${VPP_VERSION}*" "vpp-plugin-core=${VPP_VERSION}*" \
 && apt-get purge -y curl gnupg && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*
COPY vppmesh-agent agentctl /usr/local/bin/
ENTRYPOINT ["/usr/bin/vpp"]
CMD ["-c", "/etc/vpp/startup.conf"]
