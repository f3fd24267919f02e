-- A database made by Vitrine 0.1.0's own code (create_all, then rows through its models).
BEGIN TRANSACTION;
CREATE TABLE audit_log (
	id INTEGER NOT NULL, 
	request_id INTEGER, 
	actor VARCHAR(120) NOT NULL, 
	action VARCHAR(60) NOT NULL, 
	detail JSON, 
	at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "audit_log" VALUES(1,NULL,'admin-cli','user.add','{"name": "olga", "role": "operator"}','2026-12-04 13:28:37.532110');
INSERT INTO "audit_log" VALUES(2,NULL,'admin-cli','user.add','{"name": "acme-staff", "role": "vendor"}','2026-12-04 13:28:37.682567');
INSERT INTO "audit_log" VALUES(3,1,'operator:olga','offers_sent','{"offers": [1]}','2026-11-20 10:00:00.000000');
CREATE TABLE candidates (
	id INTEGER NOT NULL, 
	request_id INTEGER NOT NULL, 
	round INTEGER NOT NULL, 
	rank INTEGER NOT NULL, 
	product_id BIGINT NOT NULL, 
	image_id BIGINT NOT NULL, 
	score FLOAT NOT NULL, 
	"query" JSON, 
	PRIMARY KEY (id), 
	FOREIGN KEY(request_id) REFERENCES requests (id) ON DELETE CASCADE
);
INSERT INTO "candidates" VALUES(1,1,0,1,1001,100100,0.91,'{"k": 12}');
CREATE TABLE ingest_jobs (
	id INTEGER NOT NULL, 
	vendor_id INTEGER NOT NULL, 
	catalog TEXT NOT NULL, 
	model_id VARCHAR(200) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	started_at DATETIME NOT NULL, 
	finished_at DATETIME, 
	summary JSON, 
	PRIMARY KEY (id), 
	FOREIGN KEY(vendor_id) REFERENCES vendors (id)
);
INSERT INTO "ingest_jobs" VALUES(1,1,'acme.csv','test-tiny','done','2026-11-20 10:00:00.000000','2026-11-20 10:00:03.000000','{"rows": 1, "accepted": 1}');
CREATE TABLE messages (
	id INTEGER NOT NULL, 
	request_id INTEGER NOT NULL, 
	author VARCHAR(20) NOT NULL, 
	author_name VARCHAR(100) NOT NULL, 
	body TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(request_id) REFERENCES requests (id)
);
INSERT INTO "messages" VALUES(1,1,'customer','','Is it dishwasher safe?','2026-11-20 10:00:00.000000');
CREATE TABLE offers (
	id INTEGER NOT NULL, 
	request_id INTEGER NOT NULL, 
	product_id BIGINT NOT NULL, 
	vendor_id INTEGER, 
	title VARCHAR(300) NOT NULL, 
	vendor VARCHAR(200) NOT NULL, 
	image_sha256 VARCHAR(64) NOT NULL, 
	price NUMERIC(14, 2) NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	note TEXT NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	expires_at DATETIME NOT NULL, 
	created_at DATETIME NOT NULL, 
	created_by_id INTEGER, 
	PRIMARY KEY (id), 
	FOREIGN KEY(request_id) REFERENCES requests (id), 
	FOREIGN KEY(created_by_id) REFERENCES users (id)
);
INSERT INTO "offers" VALUES(1,1,1001,1,'Blue glazed mug','acme','bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb',1299,'EUR','Same glaze','accepted','2026-11-22 10:00:00.000000','2026-11-20 10:00:00.000000',1);
CREATE TABLE payments (
	id INTEGER NOT NULL, 
	request_id INTEGER NOT NULL, 
	offer_id INTEGER NOT NULL, 
	live_request_id INTEGER, 
	idempotency_key VARCHAR(200) NOT NULL, 
	provider VARCHAR(40) NOT NULL, 
	test BOOLEAN NOT NULL, 
	provider_ref VARCHAR(200) NOT NULL, 
	amount NUMERIC(14, 2) NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	card_last4 VARCHAR(4) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	message TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_payment_one_live_per_request UNIQUE (live_request_id), 
	FOREIGN KEY(request_id) REFERENCES requests (id), 
	FOREIGN KEY(offer_id) REFERENCES offers (id), 
	UNIQUE (idempotency_key)
);
INSERT INTO "payments" VALUES(1,1,1,1,'accept-1-key','test',1,'test_auth_1',1299,'EUR','4242','authorised','','2026-11-20 10:00:00.000000','2026-11-20 10:00:00.000000');
CREATE TABLE product_images (
	id BIGINT NOT NULL, 
	product_id BIGINT NOT NULL, 
	position INTEGER NOT NULL, 
	source TEXT NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	width INTEGER NOT NULL, 
	height INTEGER NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(product_id) REFERENCES products (id) ON DELETE CASCADE
);
INSERT INTO "product_images" VALUES(100100,1001,0,'images/mug.jpg','bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb',800,600);
CREATE TABLE products (
	id BIGINT NOT NULL, 
	vendor_id INTEGER NOT NULL, 
	sku VARCHAR(128) NOT NULL, 
	title VARCHAR(300) NOT NULL, 
	price NUMERIC(14, 2) NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	category VARCHAR(300) NOT NULL, 
	brand VARCHAR(200) NOT NULL, 
	color VARCHAR(100) NOT NULL, 
	in_stock BOOLEAN NOT NULL, 
	url TEXT NOT NULL, 
	description TEXT NOT NULL, 
	row_hash VARCHAR(64) NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_product_vendor_sku UNIQUE (vendor_id, sku), 
	FOREIGN KEY(vendor_id) REFERENCES vendors (id)
);
INSERT INTO "products" VALUES(1001,1,'MUG-1','Blue glazed mug',12.5,'EUR','Kitchen > Mugs','Acme','blue',1,'https://acme.example/mug','A mug','aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa','2026-11-20 10:00:00.000000','2026-11-20 10:00:00.000000');
CREATE TABLE requests (
	id INTEGER NOT NULL, 
	token VARCHAR(64) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	email VARCHAR(254) NOT NULL, 
	words TEXT NOT NULL, 
	budget NUMERIC(14, 2), 
	photo_sha256 VARCHAR(64) NOT NULL, 
	photo_width INTEGER NOT NULL, 
	photo_height INTEGER NOT NULL, 
	category VARCHAR(300) NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	queued_at DATETIME, 
	claimed_by_id INTEGER, 
	claimed_at DATETIME, 
	claim_expires_at DATETIME, 
	operator_id INTEGER, 
	accepted_offer_id INTEGER, 
	PRIMARY KEY (id), 
	UNIQUE (token), 
	FOREIGN KEY(claimed_by_id) REFERENCES users (id), 
	FOREIGN KEY(operator_id) REFERENCES users (id)
);
INSERT INTO "requests" VALUES(1,'tok-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx','paid','carla@example.com','blue mug',20,'cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc',1200,900,'','2026-11-20 10:00:00.000000','2026-11-20 10:00:00.000000','2026-11-20 10:00:00.000000',NULL,NULL,NULL,1,1);
CREATE TABLE staff_sessions (
	id INTEGER NOT NULL, 
	token_sha256 VARCHAR(64) NOT NULL, 
	user_id INTEGER NOT NULL, 
	created_at DATETIME NOT NULL, 
	expires_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (token_sha256), 
	FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE
);
INSERT INTO "staff_sessions" VALUES(1,'dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd',1,'2026-11-20 10:00:00.000000','2026-11-21 10:00:00.000000');
CREATE TABLE users (
	id INTEGER NOT NULL, 
	name VARCHAR(100) NOT NULL, 
	role VARCHAR(20) NOT NULL, 
	password_hash VARCHAR(200) NOT NULL, 
	vendor_id INTEGER, 
	active BOOLEAN NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name), 
	FOREIGN KEY(vendor_id) REFERENCES vendors (id)
);
INSERT INTO "users" VALUES(1,'olga','operator','$argon2id$v=19$m=65536,t=3,p=4$SOkhBBXsYT0gJBM5ssrt2A$FiqTtAhyJICrSqO1941fZiW2tXEswuYqiMUX0CBI0HI',NULL,1,'2026-12-04 13:28:37.531653');
INSERT INTO "users" VALUES(2,'acme-staff','vendor','$argon2id$v=19$m=65536,t=3,p=4$ErkFNnvRjfVBROfrO06h4Q$UJ5kyKPBeiXw6Ppmt+M3yu7TM7mOCPHQ+2hFDypiBYA',1,1,'2026-12-04 13:28:37.682299');
CREATE TABLE vendors (
	id INTEGER NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);
INSERT INTO "vendors" VALUES(1,'acme','2026-11-20 10:00:00.000000');
CREATE INDEX ix_audit_log_at ON audit_log (at);
CREATE INDEX ix_audit_log_request_id ON audit_log (request_id);
CREATE INDEX ix_products_vendor_id ON products (vendor_id);
CREATE INDEX ix_ingest_jobs_vendor_id ON ingest_jobs (vendor_id);
CREATE INDEX ix_product_images_product_id ON product_images (product_id);
CREATE INDEX ix_product_images_sha256 ON product_images (sha256);
CREATE INDEX ix_requests_created_at ON requests (created_at);
CREATE INDEX ix_requests_status ON requests (status);
CREATE INDEX ix_staff_sessions_user_id ON staff_sessions (user_id);
CREATE INDEX ix_candidates_request_id ON candidates (request_id);
CREATE INDEX ix_offers_request_id ON offers (request_id);
CREATE INDEX ix_messages_request_id ON messages (request_id);
CREATE INDEX ix_payments_request_id ON payments (request_id);
COMMIT;
