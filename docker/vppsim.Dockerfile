# vppsim, the project's VPP stand-in: it serves VPP's binary API on
# /run/vpp/api.sock (bind-mount /run/vpp to share it with the agent) and moves
# memif and vhost-user packets. Built by `make images` (FROM scratch).
FROM scratch
COPY vppsim /usr/local/bin/
ENV PATH=/usr/local/bin
ENTRYPOINT ["vppsim"]
CMD ["--socket", "/run/vpp/api.sock", "--stats-socket", "/run/vpp/stats.sock"]
