# ngx_mcig_module on Debian bookworm's nginx, in two stages.  Every RUN is a
# command of util/docker-steps.sh, which CI replays without Docker
# ("util/docker-steps.sh ci"), so CI exercises what the image runs; the
# runtime packages are listed there, once.
#
#   docker build -t mcig .
#   docker run -p 8080:8080 mcig      # conf.d/nginx.conf, listening on *:8080

# Build stage: util/setup.sh and util/build.sh, as CI runs them, then the
# final stage's files (the module, conf.d/) in /stage.
FROM debian:bookworm-slim AS build
WORKDIR /src
COPY . .
RUN bash util/docker-steps.sh build /stage

# Final stage: Debian's nginx and the module's runtime libraries, the module
# and conf.d/ in /opt/ngx_mcig_module, nginx run by the non-root user mcig.
FROM debian:bookworm-slim
COPY --from=build /stage/ /
RUN bash /opt/ngx_mcig_module/util/docker-steps.sh runtime /opt/ngx_mcig_module
USER mcig
WORKDIR /opt/ngx_mcig_module
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["bash", "/opt/ngx_mcig_module/util/docker-steps.sh", "healthcheck"]
STOPSIGNAL SIGQUIT
CMD ["nginx", "-p", "/opt/ngx_mcig_module", "-e", "stderr", \
     "-c", "conf.d/nginx.conf", "-g", "daemon off;"]
