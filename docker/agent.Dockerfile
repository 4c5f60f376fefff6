# The vppmesh agent and agentctl, static Go binaries on an empty image.
# Built by `make images` from ./bin/static (nothing is pulled: FROM scratch).
FROM scratch
COPY vppmesh-agent agentctl /usr/local/bin/
ENV PATH=/usr/local/bin
# The embedded etcd's data; a lab mounts nothing here (a fresh agent per run).
WORKDIR /var/lib/vppmesh
ENTRYPOINT ["vppmesh-agent"]
CMD ["--help"]
