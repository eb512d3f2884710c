CREATE STREAM user_events (user_id VARCHAR, event_type VARCHAR, event_time TIMESTAMP)
  WITH (kafka_topic = 'user_events', value_format = 'JSON', timestamp = 'event_time');
CREATE STREAM shipments (order_id BIGINT, tracking_number VARCHAR, carrier VARCHAR, shipped_at TIMESTAMP)
  WITH (kafka_topic = 'shipments', value_format = 'JSON', timestamp = 'shipped_at');
CREATE TABLE products (product_id VARCHAR PRIMARY KEY, name VARCHAR, price DECIMAL(10,2))
  WITH (kafka_topic = 'products', value_format = 'JSON');
CREATE STREAM login_events (user_id VARCHAR, status VARCHAR, event_time TIMESTAMP)
  WITH (kafka_topic = 'login_events', value_format = 'JSON', timestamp = 'event_time');
CREATE STREAM sensor_readings (sensor_id VARCHAR, temperature DOUBLE, event_time TIMESTAMP)
  WITH (kafka_topic = 'sensor_readings', value_format = 'JSON', timestamp = 'event_time');
-- Define a stream (maps to existing topic)
CREATE STREAM orders (
  order_id BIGINT,
  customer_id VARCHAR,
  amount DECIMAL(10,2),
  status VARCHAR,
  created_at TIMESTAMP,
  product_id VARCHAR,
  quantity INT,
  order_velocity INT
) WITH (
  kafka_topic = 'orders',
  value_format = 'AVRO',
  key = 'order_id',
  timestamp = 'created_at'
);

-- Define a table (changelog stream)
CREATE TABLE customers (
  customer_id VARCHAR PRIMARY KEY,
  name VARCHAR,
  email VARCHAR,
  tier VARCHAR
) WITH (
  kafka_topic = 'customers',
  value_format = 'AVRO'
);

-- Simple filter
CREATE STREAM high_value_orders AS
SELECT * FROM orders
WHERE amount > 1000;

-- Projection
CREATE STREAM order_summary AS
SELECT order_id, customer_id, amount, status
FROM orders;

-- Expression evaluation
CREATE STREAM orders_with_fee AS
SELECT 
  order_id,
  amount,
  amount * 0.03 AS processing_fee,
  amount + (amount * 0.03) AS total
FROM orders;

-- Count orders per 5-minute window
CREATE STREAM order_counts AS
SELECT 
  TUMBLE_START(created_at, INTERVAL '5' MINUTE) AS window_start,
  COUNT(*) AS order_count,
  SUM(amount) AS total_amount
FROM orders
GROUP BY TUMBLE(created_at, INTERVAL '5' MINUTE);

-- Average order value over last 10 minutes, updated every minute
CREATE STREAM avg_order_value AS
SELECT 
  HOP_START(created_at, INTERVAL '1' MINUTE, INTERVAL '10' MINUTE) AS window_start,
  AVG(amount) AS avg_value
FROM orders
GROUP BY HOP(created_at, INTERVAL '1' MINUTE, INTERVAL '10' MINUTE);

-- Group user events into sessions (30-min inactivity gap)
CREATE STREAM user_sessions AS
SELECT 
  user_id,
  SESSION_START(event_time, INTERVAL '30' MINUTE) AS session_start,
  COUNT(*) AS event_count,
  COLLECT_LIST(event_type) AS events
FROM user_events
GROUP BY user_id, SESSION(event_time, INTERVAL '30' MINUTE);

-- Running total per customer (stateful)
CREATE TABLE customer_totals AS
SELECT 
  customer_id,
  COUNT(*) AS order_count,
  SUM(amount) AS total_spent,
  AVG(amount) AS avg_order_value
FROM orders
GROUP BY customer_id;

-- Enrich orders with customer info
CREATE STREAM enriched_orders AS
SELECT 
  o.order_id,
  o.amount,
  c.name AS customer_name,
  c.tier AS customer_tier
FROM orders o
LEFT JOIN customers c
  ON o.customer_id = c.customer_id;

-- Join orders with shipments within 1-hour window
CREATE STREAM order_shipments AS
SELECT 
  o.order_id,
  o.amount,
  s.tracking_number,
  s.carrier
FROM orders o
INNER JOIN shipments s
  WITHIN INTERVAL '1' HOUR
  ON o.order_id = s.order_id;

-- Join orders, customers, and products
CREATE STREAM full_order_details AS
SELECT 
  o.order_id,
  c.name AS customer_name,
  p.name AS product_name,
  o.quantity,
  p.price * o.quantity AS line_total
FROM orders o
JOIN customers c ON o.customer_id = c.customer_id
JOIN products p ON o.product_id = p.product_id;

-- Register UDF
CREATE FUNCTION detect_fraud(amount DECIMAL, velocity INT)
  RETURNS BOOLEAN
  LANGUAGE PYTHON
  AS 'fraud_detection:detect_fraud';

-- Use UDF
CREATE STREAM potential_fraud AS
SELECT * FROM orders
WHERE detect_fraud(amount, order_velocity) = TRUE;

-- Detect 3 failed logins followed by success
CREATE STREAM suspicious_logins AS
SELECT * FROM login_events
MATCH_RECOGNIZE (
  PARTITION BY user_id
  ORDER BY event_time
  MEASURES
    FIRST(event_time) AS pattern_start,
    LAST(event_time) AS pattern_end
  PATTERN (FAIL{3,} SUCCESS)
  DEFINE
    FAIL AS status = 'failed',
    SUCCESS AS status = 'success'
);

-- Detect outliers using moving average
CREATE STREAM anomalies AS
SELECT 
  sensor_id,
  temperature,
  AVG(temperature) OVER (
    PARTITION BY sensor_id
    ORDER BY event_time
    RANGE INTERVAL '1' HOUR PRECEDING
  ) AS avg_temp
FROM sensor_readings
WHERE ABS(temperature - avg_temp) > 10;
