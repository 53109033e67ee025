//! Integration tests: the real server on a random port, a fresh database per
//! test, every test on SQLite and on PostgreSQL.

mod helpers;

mod access;
mod analytics;
mod campaign_sending;
mod campaigns;
mod checkout;
mod errors;
mod family;
mod feedback;
mod insights;
mod loyalty;
mod member_console;
mod member_login;
mod members;
mod privacy;
mod receivers;
mod regressions;
mod rewards;
mod segments;
mod stores;
mod webhooks;
