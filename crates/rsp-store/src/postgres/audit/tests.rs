use crate::audit_rows::suite::audit_suite;
use crate::pg_test::fresh_store;

audit_suite!(fresh_store);
