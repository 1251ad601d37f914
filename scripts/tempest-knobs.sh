# Harness knobs (read by tempest-image.sh's setup/configure-tempest): what the
# service under test supports. Sourced by scripts/tempest and scripts/tempest-glance,
# so Glimpse and Glance run with the same tempest.conf; docs/tempest.md explains each.
export TH_IMPORT_IMAGE=true        # glance-direct and web-download
export TH_MANAGE_LOCATIONS=true    # show_multiple_locations = true
export TH_HTTP_STORE=true          # the http store is enabled
export TH_DO_SECURE_HASH=true      # hashes of locations' data are computed
export TH_ENFORCE_SCOPE=true       # [oslo_policy] enforce_scope = true
export TH_FORMAT_ENFORCEMENT=true  # [image_format] require_image_format_match (default true)
export TH_IMAGE_CACHING=false      # no /v2/cache API in Glimpse
export TH_STORE_WEIGHT=false       # single store in this run
export TH_IMAGE_CONVERSION=false   # the image_conversion plugin is not enabled in this run
# Seconds one `tempest run` may take: the plugin's 186 tests took 28-31 minutes here,
# over the harness's default of 1800.
export TH_RUN_TIMEOUT=${TH_RUN_TIMEOUT:-3600}
