# ngx_mcig_module on Debian bookworm's nginx.  Minimal for now: the
# hardening work adds a multi-stage build, a HEALTHCHECK and a non-root
# worker user.  It runs the same scripts as CI.
FROM debian:bookworm-slim

WORKDIR /opt/ngx_mcig_module
COPY . .

RUN apt-get update \
    && bash util/setup.sh \
    && bash util/build.sh \
    && mkdir -p build/run \
    && rm -rf /var/lib/apt/lists/*

EXPOSE 8080
CMD ["nginx", "-p", "/opt/ngx_mcig_module", "-c", "conf.d/nginx.conf", \
     "-g", "daemon off;"]
