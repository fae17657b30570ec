# Generic seed for a throw-away test Redmine (Debian package, Redmine 5.0).
# Run by start-redmine.sh via:
#   cd /usr/share/redmine && RAILS_ENV=production bin/rails runner seed.rb
# It is idempotent: running it again changes nothing unless the env asks for it.
#
# Environment:
#   REDMINE_API_KEY         optional fixed admin API key (40 chars recommended);
#                           empty => keep the existing key or let Redmine generate one
#   REDMINE_LOGIN_REQUIRED  '1' (default) or '0'. With '1' an invalid/absent API key
#                           always yields HTTP 401; with '0' a bad key silently
#                           degrades to the anonymous user (200 + empty lists).
#   SEED_KEY_FILE           file to write the admin API key to (required)
#
# It deliberately does NOT create projects, trackers, statuses, custom fields or
# workflows: the connector's setup script does that (tests/redmine_fixtures.py runs it).

key_file = ENV.fetch('SEED_KEY_FILE')

# REST API on (Administration > Settings > API). Setting writes go to the
# `settings` table; a running server notices on its next request
# (Setting.check_cache compares settings.updated_on).
Setting.rest_api_enabled = '1' unless Setting.rest_api_enabled?
login_required = ENV.fetch('REDMINE_LOGIN_REQUIRED', '1') == '0' ? '0' : '1'
Setting.login_required = login_required unless Setting.login_required.to_s == login_required

admin = User.find_by_login('admin') || User.where(admin: true).order(:id).first
abort('seed.rb: no admin user in the database') unless admin

wanted = ENV['REDMINE_API_KEY'].to_s.strip
if wanted.empty?
  key = admin.api_key # creates the 'api' token if the admin has none yet
else
  token = admin.api_token || Token.create!(user: admin, action: 'api')
  # Token#generate_new_token runs before_create, so set the fixed value afterwards.
  token.update_column(:value, wanted) unless token.value == wanted
  key = wanted
end

File.write(key_file, key + "\n")
$stderr.puts "seed.rb: REST API enabled, login_required=#{login_required}, admin=#{admin.login}"
