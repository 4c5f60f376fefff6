# vppmesh-cnf, the traffic CNF (gen, sink, reflect on one memif). Memif needs
# no network: run it with --network none and the socket directory bind-mounted.
# Built by `make images` (FROM scratch).
FROM scratch
COPY vppmesh-cnf /usr/local/bin/
ENV PATH=/usr/local/bin
ENTRYPOINT ["vppmesh-cnf"]
CMD ["reflect"]
